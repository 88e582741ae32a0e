"""GNU Radio 3.10 gr-zeromq PULL source -> file: what a GNU Radio flowgraph receives from a marslink stage.

Run with ``/usr/bin/python3``. Connects a ``zeromq.pull_source`` to ``--address`` (a marslink
stage's bound PUSH), takes ``--samples`` complex64 samples and writes them to ``output``. With
``--pass-tags`` the source parses gr-zeromq's tag header; a small Python block records the tags
that arrive and the script prints them as JSON lines: ``{"offset": ..., "key": ..., "value": ...}``.

    /usr/bin/python3 tests/gr/zmq_pull_to_file.py --address tcp://127.0.0.1:5556 --samples 400000 out.cf32
"""

import argparse
import json

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq


class TagRecorder(gr.sync_block):
    """Sink that keeps every stream tag it sees."""

    def __init__(self):
        gr.sync_block.__init__(self, name="tag_recorder", in_sig=[np.complex64], out_sig=[])
        self.tags = []

    def work(self, input_items, output_items):
        n = len(input_items[0])
        for t in self.get_tags_in_window(0, 0, n):
            self.tags.append(
                {"offset": t.offset, "key": pmt.symbol_to_string(t.key), "value": pmt.to_python(t.value)}
            )
        return n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("output", help="complex64 output file")
    p.add_argument("--address", required=True, help="ZeroMQ endpoint to connect to")
    p.add_argument("--samples", type=int, required=True, help="samples to write")
    p.add_argument("--pass-tags", action="store_true", help="expect gr-zeromq's tag header")
    a = p.parse_args()
    tb = gr.top_block()
    src = zeromq.pull_source(gr.sizeof_gr_complex, 1, a.address, 100, a.pass_tags, -1)
    head = blocks.head(gr.sizeof_gr_complex, a.samples)
    sink = blocks.file_sink(gr.sizeof_gr_complex, a.output, False)
    sink.set_unbuffered(False)
    tb.connect(src, head, sink)
    rec = TagRecorder()
    tb.connect(head, rec)
    tb.run()
    sink.close()
    for t in rec.tags:
        print(json.dumps(t))


if __name__ == "__main__":
    main()

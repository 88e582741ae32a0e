"""Shipped flowgraphs (TOML): ``marslink run NAME`` finds ``NAME.toml`` here."""

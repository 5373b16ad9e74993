"""``neardup serve``: the HTTP API over an index, and the page for people."""

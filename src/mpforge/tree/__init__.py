"""The MicroPython tree: fetched at its pin, patched by our series, and other trees to compare."""

"""The bottom layer: data files, the checkout, running programs, errors and state."""

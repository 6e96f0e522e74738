"""One module per verb; each parses options and calls the library."""

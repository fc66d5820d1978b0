"""Built-in strategies, one module each, registered through the same hook as third-party ones."""

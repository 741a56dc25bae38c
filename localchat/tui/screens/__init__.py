"""Modal screens: pickers, forms and confirmations. Each returns its result with `dismiss`."""

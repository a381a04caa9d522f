"""Built-in adapters, one module per framework. Each module imports its framework lazily
(inside the factory) so that a missing framework becomes a skip with a reason."""

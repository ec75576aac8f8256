"""The core: the data a step hands to plugins, the plugin interface, seeds, I/O helpers."""

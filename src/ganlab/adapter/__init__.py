"""The Lightning adapter: the LightningModule, its callbacks, strategies and loggers."""

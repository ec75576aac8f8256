"""ganlab: a research lab for Generative Adversarial Networks."""

__version__ = "0.1.0"

"""Generator and discriminator networks.

Every generator is built as ``G(latent_dim, data_shape, **config_args)`` and maps
``z (B, latent_dim) -> (B, *data_shape)``. Every discriminator is built as
``D(data_shape, **config_args)`` and maps ``x (B, *data_shape) -> logits (B,)``, with
``D(x) == D.head(D.features(x))``, ``features(x) -> (B, D.feature_dim)``.

- :mod:`ganlab.nets.mlp`: MLPs (Goodfellow et al. 2014), for toy data and MNIST.
- :mod:`ganlab.nets.dcgan`: DCGAN (Radford et al. 2016), for square images.
- :mod:`ganlab.nets.resnet`: SNGAN's ResNets (Miyato et al. 2018), spectral norm in D.
"""

from ganlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_geometry
from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator
from ganlab.nets.resnet import ResNetDiscriminator, ResNetGenerator, resnet_geometry

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "dcgan_geometry",
    "resnet_geometry",
]

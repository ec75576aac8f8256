"""Regularisers: plugins that add a penalty to a player's cost or constrain its weights (the
gradient penalty of WGAN-GP, WGAN's weight clipping). A loss config brings the ones its
objective is defined with (``conf/loss/wgan.yaml``, ``conf/loss/wgan_gp.yaml``); the
gradient penalty is also a trick for any loss (``tricks=[gradient_penalty]``)."""

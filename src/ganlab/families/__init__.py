"""Model families beyond Algorithm 1 (GAN_SPEC §7): each one module, its configs and tests."""

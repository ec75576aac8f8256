"""Model families: each module is one family, its players and its step (GAN_SPEC §7)."""

"""The renderers: text made from a configuration, touching nothing (exabgp.conf, bfdd's
configuration, `announcer plan`). They import the core and the configuration only, never the
running plugin's edges."""

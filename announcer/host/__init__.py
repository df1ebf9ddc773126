"""The host edge: the kernel's addresses (netlink) and BFD beside ExaBGP (FRR's bfdd: its
session state; its configuration is rendered in announcer/render/)."""

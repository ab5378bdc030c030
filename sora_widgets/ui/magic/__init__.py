"""ui.magic layer."""

"""``%sora`` / ``%%sora``: the line parsed once into a command, one module per part."""

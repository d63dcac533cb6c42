"""Task stores the kit is tried on: a gallery of broken ones, each the reference with one bug."""

"""The Context.IO 2.0 resources, each built from an Engine and an account id."""

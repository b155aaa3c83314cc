"""Board hardware abstraction: control pilot, contactors, lock, meter, isolation, power module."""

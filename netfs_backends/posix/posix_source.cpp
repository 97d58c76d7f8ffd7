// PosixSource: the posix source's factory (registry.h).

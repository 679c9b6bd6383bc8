"""Pure computation: reference profiles, window statistics, drift tests. No I/O."""

"""What is asked: the request and its options, as values, and the one builder both faces call."""

"""A request, answered: the one run behind every command and the API, and its result cache."""

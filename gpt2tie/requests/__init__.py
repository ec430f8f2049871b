"""One request, answered: what was asked, the one run that answers it, and the result cache."""

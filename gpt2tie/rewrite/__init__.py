"""untie / retie: the plan (what changes), and writing it atomically to a new folder."""

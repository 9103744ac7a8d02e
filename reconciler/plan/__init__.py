"""Planning: matching declared to live conversations, building, guarding and saving plans."""

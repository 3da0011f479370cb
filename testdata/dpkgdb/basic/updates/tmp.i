not a journal entry

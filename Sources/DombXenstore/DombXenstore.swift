// DombXenstore: see README "Architecture".

// DombArchive: see README "Architecture".

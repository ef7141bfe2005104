// DombFDT: see README "Architecture".

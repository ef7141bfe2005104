// DombLaunch: see README "Architecture".

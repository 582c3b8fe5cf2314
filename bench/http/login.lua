-- A login flood: real argon2 verifications (the bench proxy's login limits are lifted).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"demo","password":"veritable-demo"}'

//! A JSON client of the proxy's HTTP API.

use crate::TestServer;

/// A JSON API client for one server, signed in or not.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(server: &TestServer) -> Self {
        Self { base: server.url(""), http: reqwest::Client::new(), token: None }
    }

    /// Signs in as a seeded user (password `veritable-demo`).
    pub async fn signed_in(server: &TestServer, username: &str) -> Self {
        let mut api = Self::new(server);
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/auth/login",
                Some(serde_json::json!({
                    "username": username, "password": veritable_proxy::seed::DEMO_PASSWORD
                })),
            )
            .await;
        assert_eq!(status, 200, "login as {username}: {body}");
        api.token = Some(body["token"].as_str().expect("a token").to_owned());
        api
    }

    /// The same client with this token (or none).
    #[must_use]
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self { token: token.map(str::to_owned), ..self.clone() }
    }

    /// Sends one request; the status, the response headers and the JSON body
    /// (`null` when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        self.send_with(method, path, body, &[]).await
    }

    /// [`Api::send`] with extra request headers.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, headers, json)
    }

    /// Sends one request; the status and the JSON body (`null` when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let (status, _, json) = self.send(method, path, body).await;
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call("GET", path, None).await
    }

    /// Posts a reply to `topic`, which must be answered 201; its id.
    pub async fn reply(&self, topic: i64, body: &str) -> i64 {
        let path = format!("/api/v1/forums/topics/{topic}/replies");
        let (status, reply) = self.call("POST", &path, Some(serde_json::json!({ "body": body }))).await;
        assert_eq!(status, 201, "{reply}");
        reply["id"].as_i64().expect("id")
    }
}

/// The reply count a topic list page shows for `topic`, if it lists it.
pub fn listed_reply_count(page: &serde_json::Value, topic: i64) -> Option<i64> {
    page["items"].as_array().expect("items").iter().find(|t| t["id"] == topic).and_then(|t| t["reply_count"].as_i64())
}

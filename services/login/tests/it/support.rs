//! An OAuth client as a site's back end would be, and a stack with one user and one site.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tessera_login::test_util::LoginStack;
pub use tessera_testkit::Pkce;
use tessera_testkit::{Answer, Browser};

pub const PASSWORD: &str = "correct horse battery";

/// A site registered with the stack, as its back end sees it.
#[derive(Debug, Clone)]
pub struct Site {
    pub client_id: String,
    pub secret: String,
    pub redirect_uri: String,
}

pub struct World {
    pub stack: LoginStack,
    pub site: Site,
    pub user_id: String,
    pub http: reqwest::Client,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

pub async fn world_with(adjust: impl FnOnce(&mut tessera_login::config::LoginConfig)) -> World {
    let stack = LoginStack::start(adjust).await.expect("stack");
    on_stack(stack).await
}

pub async fn on_stack(stack: LoginStack) -> World {
    let user_id = stack.add_user("alice", PASSWORD).await.expect("user");
    let redirect_uri = "http://localhost:9/callback".to_owned();
    let secret = stack
        .add_site("wiki-a", &redirect_uri, Some("http://localhost:9/"), None)
        .await
        .expect("site");
    World {
        stack,
        site: Site {
            client_id: "wiki-a".into(),
            secret,
            redirect_uri,
        },
        user_id,
        http: reqwest::Client::new(),
    }
}

impl World {
    /// The `/authorize` URL for `pkce`, with extra parameters.
    pub fn authorize_url(&self, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        let mut url = reqwest::Url::parse(&self.stack.url("/authorize")).expect("url");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.site.client_id)
                .append_pair("redirect_uri", &self.site.redirect_uri)
                .append_pair("scope", "openid profile")
                .append_pair("state", &pkce.state)
                .append_pair("nonce", &pkce.nonce)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256");
            for (k, v) in extra {
                query.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Opens `/authorize` in `browser` and returns the sign-in form's flow value.
    pub async fn open_form(&self, browser: &mut Browser, seed: &str) -> String {
        let form = browser
            .get(&self.authorize_url(&Pkce::new(seed), &[]))
            .await
            .expect("authorize");
        assert_eq!(form.status, 200, "the form: {}", form.body);
        form.form_field("flow").expect("flow field")
    }

    /// Posts the password form with `flow` from `browser`.
    pub async fn post_password(
        &self,
        browser: &mut Browser,
        flow: &str,
        username: &str,
        password: &str,
    ) -> Answer {
        browser
            .post(
                &self.stack.url("/login"),
                &[
                    ("flow", flow),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await
            .expect("login post")
    }

    /// Opens `/authorize` and signs in through the form (unless the browser's central
    /// session signs it in at once); the redirect back to the site.
    pub async fn sign_in(&self, browser: &mut Browser, pkce: &Pkce) -> Answer {
        let form = browser
            .get(&self.authorize_url(pkce, &[]))
            .await
            .expect("authorize");
        if form.status == 303 {
            return form;
        }
        assert_eq!(form.status, 200, "the form: {}", form.body);
        let flow = form.form_field("flow").expect("flow field");
        browser
            .post(
                &self.stack.url("/login"),
                &[
                    ("flow", &flow),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await
            .expect("login post")
    }

    /// Signs in and returns the code.
    pub async fn code(&self, browser: &mut Browser, pkce: &Pkce) -> String {
        let back = self.sign_in(browser, pkce).await;
        assert_eq!(back.status, 303, "{}", back.body);
        assert_eq!(
            back.location_param("state").as_deref(),
            Some(pkce.state.as_str())
        );
        back.location_param("code").expect("code")
    }

    /// `POST /token` as the site (client_secret_basic), with `form`.
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.token_at(&self.stack.base_url, form).await
    }

    /// `POST /token` to the login service at `base_url` as the site, with `form`.
    pub async fn token_at(&self, base_url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{base_url}/token"))
            .basic_auth(&self.site.client_id, Some(&self.site.secret))
            .form(form)
            .send()
            .await
            .expect("token");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    /// Redeems `code` with `pkce`.
    pub async fn redeem(&self, code: &str, pkce: &Pkce) -> (u16, Value) {
        self.redeem_at(&self.stack.base_url, code, pkce).await
    }

    /// Redeems `code` with `pkce` at the login service at `base_url`.
    pub async fn redeem_at(&self, base_url: &str, code: &str, pkce: &Pkce) -> (u16, Value) {
        self.token_at(
            base_url,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.site.redirect_uri),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await
    }

    /// `GET /userinfo` with `access_token`.
    pub async fn userinfo(&self, access_token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.stack.url("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Live entries in the stash.
    pub async fn stash_entries(&self) -> u64 {
        self.stack
            .login
            .backends
            .stash
            .live_entries()
            .await
            .expect("stats")
    }
}

/// The claims of a JWT, unverified (the tests check what was issued).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

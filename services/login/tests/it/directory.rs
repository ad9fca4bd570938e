//! The directory on both databases: SQLite (the default) and PostgreSQL.

use tessera_clock::SystemClock;
use tessera_login::directory::{Directory, NewSite, UserName};
use tessera_login::test_util::LoginStack;
use tessera_login::LoginError;
use tessera_login::ServiceError as _;
use tessera_testkit::{Browser, PostgresServer};

use crate::support::{on_stack, Pkce};

async fn directory_behaves(directory: &Directory) {
    let now = tessera_clock::Clock::now(&SystemClock);
    let name = UserName::try_from("Bob").expect("name");
    assert_eq!(name.as_str(), "bob", "names are case-insensitive");
    let id = directory.add_user(&name, "hash", now).await.expect("added");
    assert!(matches!(
        directory.add_user(&name, "hash", now).await,
        Err(LoginError::Duplicate { .. })
    ));
    let user = directory
        .user_by_name(&name)
        .await
        .expect("read")
        .expect("found");
    assert_eq!((user.id.as_str(), user.disabled), (id.as_str(), false));
    directory.set_disabled(&name, true).await.expect("disable");
    assert!(
        directory
            .user_by_id(&id)
            .await
            .expect("read")
            .expect("found")
            .disabled
    );
    assert!(directory.use_totp_step(&id, 10).await.expect("step"));
    assert!(
        !directory.use_totp_step(&id, 10).await.expect("step"),
        "a step is used once"
    );
    assert!(
        !directory.use_totp_step(&id, 9).await.expect("step"),
        "or any earlier one"
    );
    assert!(matches!(
        directory
            .set_password(&UserName::try_from("nobody").expect("name"), "h")
            .await,
        Err(LoginError::NotFound { .. })
    ));
    let site = NewSite {
        client_id: tessera_login::admin_cli::client_id("wiki-c").expect("id"),
        display_name: Some("Wiki C".into()),
        redirect_uris: vec![
            "https://c.example/cb".into(),
            "https://c.example/cb2".into(),
        ],
        post_logout_uris: vec!["https://c.example/".into()],
        backchannel_logout_uri: Some("https://c.example/bcl".into()),
        id_token_alg: Default::default(),
    };
    let secret = directory.add_site(&site, now).await.expect("site");
    assert!(matches!(
        directory.add_site(&site, now).await,
        Err(LoginError::Duplicate { .. })
    ));
    let stored = directory
        .site("wiki-c")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(stored.redirect_uris.len(), 2);
    assert!(stored.secret_matches(&secret));
    assert!(!stored.secret_matches("guess"));
}

async fn sign_in_works(stack: LoginStack) {
    let world = on_stack(stack).await;
    directory_behaves(&world.stack.login.directory).await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("db");
    let code = world.code(&mut browser, &pkce).await;
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_and_a_full_sign_in_work_on_sqlite() {
    sign_in_works(LoginStack::start(|_| {}).await.expect("stack")).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_directory_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("login/directory.db");
    let directory = Directory::open(&format!("sqlite://{}", file.display()))
        .await
        .expect("open");
    directory.close().await;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "it holds password hashes and second-factor secrets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_and_a_full_sign_in_work_on_postgresql() {
    let postgres = PostgresServer::start()
        .await
        .expect("PostgreSQL must be installed for this test");
    let url = postgres.new_database().await.expect("database");
    sign_in_works(
        LoginStack::start_with(Some(url), None, |_| {})
            .await
            .expect("stack"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_uris_are_refused_with_what_to_fix() {
    for bad in ["ab", "a-very-long-user-name-here", "al ice", "-alice"] {
        let err = UserName::try_from(bad).expect_err(bad);
        assert_eq!(err.code(), "invalid_input", "{bad}");
    }
    let stack = LoginStack::start(|_| {}).await.expect("stack");
    for (uri, why) in [
        ("http://wiki.example/cb", "https"),
        ("not a url", "absolute"),
        ("https://wiki.example/cb#frag", "fragment"),
    ] {
        let err = stack
            .add_site("wiki-x", uri, None, None)
            .await
            .expect_err(uri);
        assert!(err.to_string().contains(why), "{uri}: {err}");
    }
}

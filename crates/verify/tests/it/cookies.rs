//! Session cookies: attributes, one name per scope, deletion and parsing.

use tessera_verify::cookie::{cookie_name, delete_cookie, session_token, set_cookie};

#[test]
fn the_session_cookie_is_host_prefixed_secure_httponly_lax() {
    let header = set_cookie("wiki-a", "tok", 300);
    assert!(
        header.starts_with("__Host-tessera-wiki-a=tok; "),
        "{header}"
    );
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=300",
    ] {
        assert!(
            header.split("; ").any(|a| a == attribute),
            "{attribute} missing from {header}"
        );
    }
    assert!(
        !header.contains("Domain"),
        "__Host- cookies must not name a domain"
    );
}

#[test]
fn deletion_repeats_the_attributes_with_max_age_zero() {
    let set = set_cookie("central", "tok", 300);
    let delete = delete_cookie("central");
    let attributes = |h: &str| {
        h.split("; ")
            .skip(1)
            .filter(|a| !a.starts_with("Max-Age"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(attributes(&set), attributes(&delete));
    assert!(delete.ends_with("Max-Age=0"));
}

#[test]
fn scopes_never_share_a_cookie_name() {
    assert_ne!(cookie_name("central"), cookie_name("wiki-a"));
    let header = "__Host-tessera-central=central-token; __Host-tessera-wiki-a=site-token";
    assert_eq!(session_token([header], "wiki-a"), Some("site-token"));
    assert_eq!(session_token([header], "central"), Some("central-token"));
    assert_eq!(session_token([header], "wiki-b"), None);
}

#[test]
fn a_deleted_value_is_not_a_token_and_duplicates_resolve_to_the_first() {
    let name = cookie_name("wiki-a");
    let deleted_first = format!("{name}=deleted; {name}=real");
    assert_eq!(
        session_token([deleted_first.as_str()], "wiki-a"),
        Some("real")
    );
    let duplicates = format!("{name}=first; other=x; {name}=second");
    assert_eq!(
        session_token([duplicates.as_str()], "wiki-a"),
        Some("first")
    );
    let across_headers = [format!("{name}=one"), format!("{name}=two")];
    assert_eq!(
        session_token(across_headers.iter().map(String::as_str), "wiki-a"),
        Some("one")
    );
    assert_eq!(
        session_token([format!("{name}=deleted").as_str()], "wiki-a"),
        None
    );
}

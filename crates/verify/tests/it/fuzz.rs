//! Property tests over arbitrary input: the parser never panics and nothing but a genuine
//! token verifies.

use proptest::prelude::*;

use crate::support::{claims, now, signer, verifier};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_strings_never_verify(input in ".{0,600}") {
        let signer = signer(1);
        prop_assert!(verifier(&[&signer]).verify(&input, now()).is_err());
    }

    #[test]
    fn arbitrary_three_part_base64_never_verifies(a in "[A-Za-z0-9_-]{0,120}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,100}") {
        let signer = signer(1);
        let token = format!("{a}.{b}.{c}");
        prop_assert!(verifier(&[&signer]).verify(&token, now()).is_err());
    }

    #[test]
    fn any_change_to_a_genuine_token_is_refused(index in 0usize..400, replacement in "[A-Za-z0-9_.=-]") {
        let signer = signer(1);
        let token = signer.sign(&claims("user-1", "sid-1"));
        let index = index % token.len();
        let mut changed = token.clone();
        changed.replace_range(index..index + 1, &replacement);
        prop_assume!(changed != token);
        prop_assert!(verifier(&[&signer]).verify(&changed, now()).is_err(), "{changed}");
    }
}

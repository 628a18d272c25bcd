//! The `anxin` binary as a person runs it: demo into a directory, verify, damage, rebuild.

use std::process::Command;

fn anxin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anxin")).args(args).output().expect("run anxin")
}

#[test]
fn demo_verify_damage_and_rebuild_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();

    let out = anxin(&["demo", "--data", data_s, "--seed", "3", "--json", "--no-serve"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = demo["records"].as_u64().unwrap();
    assert_eq!(demo["verified"].as_u64(), Some(records));
    assert_eq!(demo["summary"]["projects_total"], 21);
    let codes: Vec<&str> = demo["flags"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"WAGES_OVERDUE") && codes.contains(&"SPLIT_BELOW_RATIO"), "{codes:?}");

    // A second demo into the same directory is refused, not mixed in.
    let again = anxin(&["demo", "--data", data_s, "--no-serve"]);
    assert!(!again.status.success());

    let out = anxin(&["verify", "--data", data_s, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"].as_u64(), Some(records));
    assert_eq!(v["head"], demo["chain_head"]);
    assert_eq!(v["index_agrees"], true);

    let out = anxin(&["rebuild", "--data", data_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("from {records} records")));

    // Damage one byte in the middle of the log: verify fails and names a record.
    let seg = data.join("log").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&seg, bytes).unwrap();
    let out = anxin(&["verify", "--data", data_s]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verification FAILED") && err.contains("record "), "{err}");
}

//! The blob store's contract (`BlobStore`): staged uploads stay invisible until committed, can be
//! kept and resumed (and read back from their start, which the server needs to re-verify what
//! arrived before), and committed blobs read back by range, list, and delete. Run against the
//! local folder and a real S3 server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use futures_util::StreamExt;
use keyhole_server::blobs::s3::{PART_BYTES, S3BlobStore};
use keyhole_server::blobs::{BlobStore, FsBlobStore};
use keyhole_testkit::s3::S3Server;

async fn collect(
    stream: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = stream;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn contract(store: &dyn BlobStore) {
    let key = [7u8; 16];
    let name = "0707-aa01";
    let body = bytes(300_000, 1);

    // Staged bytes are not a blob until committed; an aborted upload leaves nothing.
    let mut staged = store.stage(name).await.unwrap();
    staged.write(&body[..1000]).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    staged.abort().await;
    assert_eq!(store.partial_len(name).await.unwrap(), None);
    assert!(store.resume(name).await.unwrap().is_none());

    // Kept, resumed where it stopped, read back from its start, then committed.
    let mut staged = store.stage(name).await.unwrap();
    staged.write(&body[..100_000]).await.unwrap();
    staged.keep().await.unwrap();
    assert_eq!(store.partial_len(name).await.unwrap(), Some(100_000));
    let (mut staged, have) = store.resume(name).await.unwrap().unwrap();
    assert_eq!(have, 100_000);
    assert_eq!(
        collect(store.read_partial(name).await.unwrap()).await,
        body[..100_000]
    );
    staged.write(&body[100_000..]).await.unwrap();
    staged.commit(&key).await.unwrap();
    assert_eq!(
        store.partial_len(name).await.unwrap(),
        None,
        "no longer partial"
    );
    assert_eq!(store.size(&key).await.unwrap(), Some(body.len() as u64));

    // Ranges, including the whole blob and a range running past its end.
    assert_eq!(
        collect(store.read(&key, 0..300_000).await.unwrap()).await,
        body
    );
    assert_eq!(
        collect(store.read(&key, 65_530..65_600).await.unwrap()).await,
        body[65_530..65_600]
    );
    assert_eq!(
        collect(store.read(&key, 299_990..400_000).await.unwrap()).await,
        body[299_990..]
    );

    // Staging from empty discards an earlier partial upload of the same name.
    let mut staged = store.stage("0808-bb02").await.unwrap();
    staged.write(b"stale").await.unwrap();
    staged.keep().await.unwrap();
    let mut staged = store.stage("0808-bb02").await.unwrap();
    staged.write(b"fresh").await.unwrap();
    staged.commit(&[8; 16]).await.unwrap();
    assert_eq!(
        collect(store.read(&[8; 16], 0..5).await.unwrap()).await,
        b"fresh"
    );

    let mut keys = store.keys().await.unwrap();
    keys.sort_unstable();
    assert_eq!(keys, [[7; 16], [8; 16]]);
    store.delete(&key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    store.delete(&key).await.unwrap(); // deleting again is not an error
    assert_eq!(store.keys().await.unwrap(), [[8; 16]]);

    // Names that could leave the staging area are refused.
    for bad in ["", "../objects", "a/b", "x y"] {
        assert!(store.stage(bad).await.is_err(), "{bad:?}");
    }

    // Partial uploads left alone are pruned once stale, and only then.
    let mut staged = store.stage("0909-cc03").await.unwrap();
    staged.write(b"abandoned").await.unwrap();
    staged.keep().await.unwrap();
    // Counted by the prefix of their names (a camera's), each upload once however many parts,
    // and only once unwritten for as long as asked.
    let any = std::time::Duration::ZERO;
    assert_eq!(store.abandoned_count("0909-", any).await.unwrap(), 1);
    assert_eq!(store.abandoned_count("0808-", any).await.unwrap(), 0);
    assert_eq!(
        store.abandoned_count("", any).await.unwrap(),
        1,
        "the committed upload is no longer partial"
    );
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(store.abandoned_count("0909-", hour).await.unwrap(), 0);
    assert_eq!(
        store
            .prune_partials(std::time::Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        store
            .prune_partials(std::time::Duration::from_millis(10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.partial_len("0909-cc03").await.unwrap(), None);
}

#[tokio::test]
async fn the_local_folder_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).await.unwrap();
    contract(&store).await;
    // A second store on the same folder (a restart) sees the same blobs.
    let again = FsBlobStore::open(dir.path()).await.unwrap();
    assert_eq!(again.keys().await.unwrap(), [[8; 16]]);
}

#[tokio::test]
async fn an_s3_bucket_keeps_the_contract() {
    let Some(s3) = S3Server::start() else {
        eprintln!("s3s-fs is not installed: skipped");
        return;
    };
    let store = S3BlobStore::open(&s3.config()).await.unwrap();
    contract(&store).await;
    let again = S3BlobStore::open(&s3.config()).await.unwrap();
    assert_eq!(again.keys().await.unwrap(), [[8; 16]]);
}

/// Uploads larger than a part: written as several part objects, kept and resumed across them,
/// then joined by a multipart upload on commit.
#[tokio::test]
async fn an_s3_upload_of_several_parts_commits_whole() {
    let Some(s3) = S3Server::start() else {
        eprintln!("s3s-fs is not installed: skipped");
        return;
    };
    let store = S3BlobStore::open(&s3.config()).await.unwrap();
    let body = bytes(2 * PART_BYTES + 12_345, 3);
    let name = "0a0a-dd04";
    let mut staged = store.stage(name).await.unwrap();
    // Written in uneven pieces, interrupted after a part and a half.
    let cut = PART_BYTES + PART_BYTES / 2;
    for piece in body[..cut].chunks(1 << 20) {
        staged.write(piece).await.unwrap();
    }
    staged.keep().await.unwrap();
    let (mut staged, have) = store.resume(name).await.unwrap().unwrap();
    assert_eq!(have, cut as u64);
    assert_eq!(
        collect(store.read_partial(name).await.unwrap()).await,
        body[..cut]
    );
    for piece in body[cut..].chunks(100_000) {
        staged.write(piece).await.unwrap();
    }
    staged.commit(&[10; 16]).await.unwrap();
    assert_eq!(store.partial_len(name).await.unwrap(), None);
    assert_eq!(
        store.size(&[10; 16]).await.unwrap(),
        Some(body.len() as u64)
    );
    assert!(collect(store.read(&[10; 16], 0..body.len() as u64).await.unwrap()).await == body);
    let mid = PART_BYTES as u64 - 10..PART_BYTES as u64 + 10;
    assert_eq!(
        collect(store.read(&[10; 16], mid.clone()).await.unwrap()).await,
        body[mid.start as usize..mid.end as usize]
    );
}

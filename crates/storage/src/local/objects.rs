//! The local backend's objects: looked up, moved by rename (or copied), read, deleted by version, listed page by
//! page, and DraftStore's own records.

use super::*;

#[async_trait]
impl ObjectStore for LocalStorage {
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta> {
        self.open_object(bucket, key).await.map(|(meta, _)| meta)
    }

    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<()> {
        // The move works on the file opened and checked here, never on whatever its path names a moment later: a
        // copy reads that file; a rename first takes it under a private name, checked to be that file.
        self.require_bucket(to).await?;
        let not_found = || Error::NotFound { bucket: from.to_string(), key: key.to_string() };
        let (current, file) = match self.open_object(from, key).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        options.check_source(key, &current)?;
        let to_key = options.destination(key);
        let target = self.object_path(to, to_key);
        let held = file.metadata().await.map_err(|e| Error::other(format!("failed to read '{key}'"), e))?;
        // The bytes are copied, from the file opened, when the metadata changes or the source stays; otherwise the
        // file itself moves. A copy comes first: the source is held aside (below) only for an instant.
        let staged = if options.metadata.is_some() || options.keep_source {
            Some(self.stage_copy(&current, file, options, progress).await?.file)
        } else {
            None
        };
        // A move takes the draft aside (of two moves of it, one only gets it) and checks it is the file opened; a
        // copy leaves it where it is.
        let aside = if options.keep_source {
            None
        } else {
            let Some(aside) = self.take_aside(from, key, None).await? else { return Err(not_found()) };
            if !same_file(&held, &aside.path).await {
                // Another was written in its place since it was opened: that one is not what was checked.
                aside.put_back().await.map_err(|e| Error::other(format!("failed to put '{key}' back"), e))?;
                return Err(Error::PreconditionFailed { message: format!("object '{key}' changed while being moved") });
            }
            Some(aside)
        };
        let moved = match (&staged, &aside) {
            (Some(staged), _) => &staged.path,
            (None, Some(aside)) => &aside.path,
            (None, None) => unreachable!("a move without a copy takes its source aside"),
        };
        let placed = if options.no_overwrite {
            // A hard link fails when the target exists: an atomic "move unless present".
            link_into_place(moved, &target, to_key).await
        } else {
            rename_into_place(moved, &target, to_key).await
        };
        if let Err(e) = placed {
            let e = match e {
                Error::AlreadyExists { .. } => Error::AlreadyExists { bucket: to.to_string(), key: to_key.to_string() },
                other => other,
            };
            // Not moved: the draft goes back where it was.
            return Err(put_back(aside, key, e).await);
        }
        if let Some(staged) = staged {
            staged.disarm();
        }
        // Gone with its take: the source, moved on or copied (a draft uploaded again meanwhile is at its path).
        if let Some(aside) = aside {
            aside.discard().await;
            if let Some(parent) = self.object_path(from, key).parent() {
                sync_dir(parent).await;
            }
        }
        // The object was confirmed now, whenever its bytes were uploaded.
        touch(&target).await;
        Ok(())
    }

    fn moves(&self) -> Moves {
        Moves::Exclusive
    }

    async fn put_record(&self, bucket: &BucketName, key: &ObjectKey, body: Bytes, if_absent: bool) -> Result<bool> {
        self.require_bucket(bucket).await?;
        let checks = WriteChecks::default();
        let body = futures_util::stream::once(async move { Ok::<_, io::Error>(body) });
        let staged = self.stage(key, ContentType::octet_stream(), &checks, body).await?;
        let target = self.object_path(bucket, key);
        let placed = if if_absent {
            // A hard link fails when the target exists: an atomic "create unless present".
            link_into_place(&staged.file.path, &target, key).await
        } else {
            rename_into_place(&staged.file.path, &target, key).await
        };
        match placed {
            Ok(()) => {
                staged.file.disarm();
                Ok(true)
            }
            Err(Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        content_type: &ContentType,
    ) -> Result<ObjectMeta> {
        self.require_bucket(bucket).await?;
        let body = futures_util::stream::once(async move { Ok::<_, io::Error>(body) });
        let staged = self.stage(key, content_type.clone(), &WriteChecks::default(), body).await?;
        rename_into_place(&staged.file.path, &self.object_path(bucket, key), key).await?;
        staged.file.disarm();
        // What was written, not a look-up after it: another writer may have replaced or removed it already.
        Ok(staged.meta)
    }

    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Bytes> {
        use tokio::io::AsyncReadExt;
        let mut reader = self.read_object(bucket, key).await?;
        let mut body = Vec::with_capacity(usize::try_from(reader.meta.size).unwrap_or_default());
        reader.body.read_to_end(&mut body).await.map_err(|e| Error::other(format!("failed to read '{key}'"), e))?;
        Ok(body.into())
    }

    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks> {
        use tokio::io::AsyncReadExt;
        let reader = self.read_object(bucket, key).await?;
        check_version(key, if_match, &reader.meta)?;
        let body = reader.body.take(first.unwrap_or(u64::MAX));
        let key = key.clone();
        Ok(Box::pin(
            tokio_util::io::ReaderStream::new(body)
                .map_err(move |e| Error::unavailable(format!("failed to read object '{key}'"), Some(Box::new(e)))),
        ))
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        let path = self.object_path(bucket, key);
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_absent(&e) => self.require_bucket(bucket).await,
            // A folder of other objects is not an object: there is nothing of that name to delete.
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(Error::other(format!("failed to delete object '{key}' from '{bucket}'"), e)),
        }
    }

    async fn delete_version(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool> {
        let removed = self.remove_if(bucket, key, etag).await?;
        if removed {
            prune_empty_parents(&self.object_path(bucket, key), &self.bucket_dir(bucket)).await;
        }
        Ok(removed)
    }

    async fn delete_versions(&self, bucket: &BucketName, versions: &[(ObjectKey, String)]) -> Result<VersionDeletes> {
        self.require_bucket(bucket).await?;
        let mut outcome = VersionDeletes::default();
        for (key, etag) in versions {
            match self.delete_version(bucket, key, etag).await {
                Ok(true) => {}
                Ok(false) => outcome.changed.push(key.clone()),
                Err(e) => outcome.failures.push(DeleteFailure { key: key.to_string(), message: e.to_string() }),
            }
        }
        Ok(outcome)
    }

    fn list(&self, bucket: &BucketName) -> ListPages<'_> {
        /// Where a listing stands between two pages.
        enum State {
            Start(PathBuf),
            Walking(Walker),
            Done,
        }
        let bucket = bucket.clone();
        let start = State::Start(self.bucket_dir(&bucket));
        Box::pin(futures_util::stream::unfold(start, move |state| {
            let bucket = bucket.clone();
            async move {
                let mut walker = match state {
                    State::Done => return None,
                    State::Walking(walker) => walker,
                    State::Start(dir) => {
                        let open = move || Walker::new(&dir, String::new(), String::new());
                        match tokio::task::spawn_blocking(open).await.map_err(io::Error::other).and_then(|r| r) {
                            Ok(walker) => walker,
                            Err(e) if is_absent(&e) => {
                                return Some((Err(Error::BucketNotFound { bucket: bucket.to_string() }), State::Done));
                            }
                            Err(e) => return Some((Err(list_error(&bucket, e)), State::Done)),
                        }
                    }
                };
                let walked =
                    tokio::task::spawn_blocking(move || (walker.next_page(LIST_PAGE, Stop::Streaming), walker)).await;
                let (found, walker) = match walked {
                    Ok((Ok(found), walker)) => (found, walker),
                    Ok((Err(e), _)) => return Some((Err(list_error(&bucket, e)), State::Done)),
                    Err(e) => return Some((Err(list_error(&bucket, io::Error::other(e))), State::Done)),
                };
                if found.objects.is_empty() && found.foreign.is_empty() && found.next.is_none() {
                    return None;
                }
                let next = if found.next.is_some() { State::Walking(walker) } else { State::Done };
                Some((Ok(ListPage { objects: found.objects, foreign_keys: found.foreign }), next))
            }
        }))
    }

    async fn list_prefix(
        &self,
        bucket: &BucketName,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PrefixPage> {
        self.require_bucket(bucket).await?;
        let not_a_token =
            |token: &str| Error::InvalidKey { key: token.to_owned(), reason: "not a page token".to_owned() };
        let token_read = token.map(|token| PageToken::decode(token).ok_or_else(|| not_a_token(token))).transpose()?;
        let limit = limit.clamp(1, LIST_PAGE);
        // The folder to walk: the prefix up to its last '/'. Its segments must be folder names of keys.
        let folder = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
        if !folder.is_empty() && folder.split('/').any(|s| matches!(s, "" | "." | "..") || s.contains('\\')) {
            return Ok(PrefixPage::default());
        }
        let mut dir = self.bucket_dir(bucket);
        let mut key_prefix = String::new();
        if !folder.is_empty() {
            dir.extend(folder.split('/'));
            key_prefix = format!("{folder}/");
        }
        let prefix = prefix.to_owned();
        let walked = tokio::task::spawn_blocking(move || list_page(&dir, key_prefix, prefix, token_read, limit))
            .await
            .map_err(|e| Error::other("the listing task stopped", e))?;
        match walked {
            Ok((objects, next)) => Ok(PrefixPage { objects, next: next.map(|next| next.encode()) }),
            Err(e) if is_absent(&e) => Ok(PrefixPage::default()),
            Err(e)
                if e.kind() == io::ErrorKind::InvalidInput
                    && let Some(token) = token =>
            {
                Err(not_a_token(token))
            }
            Err(e) => Err(list_error(bucket, e)),
        }
    }

    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>> {
        self.require_bucket(bucket).await?;
        let bucket_dir = self.bucket_dir(bucket);
        let mut failures = Vec::new();
        for key in keys {
            match self.delete(bucket, key).await {
                Ok(()) => prune_empty_parents(&self.object_path(bucket, key), &bucket_dir).await,
                Err(e) => failures.push(DeleteFailure { key: key.to_string(), message: e.to_string() }),
            }
        }
        Ok(failures)
    }

    async fn remove_stale_uploads(&self, _bucket: &BucketName, stale: StaleUploads) -> Result<u64> {
        let mut entries =
            fs::read_dir(&self.staging).await.map_err(|e| Error::other("failed to read the staging folder", e))?;
        let mut removed = 0;
        while let Some(entry) =
            entries.next_entry().await.map_err(|e| Error::other("failed to read the staging folder", e))?
        {
            let Ok(stat) = entry.metadata().await else { continue };
            let written = stat.modified().map(OffsetDateTime::from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            if stat.is_file() && written < stale.staging_before && fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        // What a crash left held aside goes back where it was.
        self.recover_aside(ASIDE_MIN_AGE).await?;
        Ok(removed + self.remove_stale_multipart(stale.multipart_before).await?)
    }
}

/// Directory entries a listing reads whole to answer in key order: below it (every listing of a few hundred
/// objects) pages come in byte order, as S3 gives them; above it, in the file system's order, each page reading
/// only its own entries, so that no page costs a read, let alone a sort, of a whole large folder.
const SORTED_WITHIN: u64 = 1000;

/// Where the next page of a local listing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PageToken {
    /// After this key, in key order (a listing small enough to be read whole); written as the key itself.
    After(ObjectKey),
    /// At this position of the walk, in the file system's order, only keys after `after` (those before were given
    /// by pages in key order); written as `/` (no key starts with it), the position, and `\n` and `after` if any.
    At { position: Position, after: Option<ObjectKey> },
}

impl PageToken {
    fn encode(&self) -> String {
        match self {
            Self::After(key) => key.to_string(),
            Self::At { position, after } => {
                let after = after.as_ref().map(|after| format!("\n{after}")).unwrap_or_default();
                format!("/{}{after}", position.encode())
            }
        }
    }

    /// `None` for anything [`PageToken::encode`] cannot have written.
    fn decode(text: &str) -> Option<Self> {
        let Some(at) = text.strip_prefix('/') else { return ObjectKey::parse(text).ok().map(Self::After) };
        let (position, after) = match at.split_once('\n') {
            Some((position, after)) => (position, Some(ObjectKey::parse(after).ok()?)),
            None => (at, None),
        };
        Some(Self::At { position: Position::decode(position)?, after })
    }
}

/// One page of a listing of `dir` (blocking): the objects, sorted, and where the next page starts.
fn list_page(
    dir: &Path,
    key_prefix: String,
    prefix: String,
    token: Option<PageToken>,
    limit: usize,
) -> io::Result<(Vec<ListedObject>, Option<PageToken>)> {
    let (walker, after) = match token {
        Some(PageToken::At { position, after }) => {
            let after_text = after.as_ref().map(ToString::to_string);
            (Walker::resume(dir, key_prefix, prefix, &position)?.after(after_text), after)
        }
        start => {
            let after = match start {
                Some(PageToken::After(key)) => Some(key),
                _ => None,
            };
            let after_text = after.as_ref().map(ToString::to_string);
            let mut whole = Walker::new(dir, key_prefix.clone(), prefix.clone())?.after(after_text.clone());
            if let Some(mut keys) = whole.keys_within(SORTED_WITHIN)? {
                keys.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
                let more = keys.len() > limit;
                keys.truncate(limit);
                let next = if more { keys.last().cloned().map(PageToken::After) } else { None };
                let mut objects = Vec::with_capacity(keys.len());
                for key in keys {
                    let path = dir.join(&key.as_str()[key_prefix.len()..]);
                    if let Some((size, modified, etag)) = walk::object_file(rustix::fs::CWD, path.as_path())? {
                        objects.push(ListedObject { key, size, last_modified: modified.into(), etag: Some(etag) });
                    }
                }
                return Ok((objects, next));
            }
            // Too many to read whole: the file system's order from the start, leaving out what pages in key
            // order already gave.
            (Walker::new(dir, key_prefix, prefix)?.after(after_text), after)
        }
    };
    let mut walker = walker;
    let Found { mut objects, next, .. } = walker.next_page(limit, Stop::Exact)?;
    // Within a page, keys are sorted for whoever reads it.
    objects.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    Ok((objects, next.map(|position| PageToken::At { position, after })))
}

fn list_error(bucket: &BucketName, e: io::Error) -> Error {
    Error::other(format!("failed to list bucket '{bucket}'"), e)
}

/// Removes the folders above a deleted object while they are empty, up to the bucket's folder. A folder that
/// another upload is filling is not empty, and removal simply stops there.
async fn prune_empty_parents(path: &Path, bucket_dir: &Path) {
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == bucket_dir || !current.starts_with(bucket_dir) || fs::remove_dir(current).await.is_err() {
            break;
        }
        dir = current.parent();
    }
}

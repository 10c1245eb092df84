// Package store is Kiln's single source of truth: a revisioned key-value
// store with etcd's model. Every successful Put or Delete bumps one
// store-wide revision; a key remembers the revision that created it and the
// one that last modified it, and writes compare-and-swap on the latter, so two
// writers racing on a record cannot both win. Watch delivers every change
// under a key prefix in revision order, starting from any revision the store
// still keeps, so a reader can List, then Watch from the List revision+1 and
// never miss or double-count a change. Bolt is the embedded implementation, a
// single bbolt file fsync'd on every commit; an etcd one can sit behind the
// same Store interface, and package storetest holds the conformance suite
// both must pass. Values are opaque bytes (Kiln stores JSON-encoded domain
// records); keys are plain strings whose '/'-separated prefixes act as
// directories.
package store

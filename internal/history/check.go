package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/netpulse/netpulse/internal/probe"
)

// errDamaged marks a history file that cannot be used as it is: Open moves
// it aside and starts a fresh one.
var errDamaged = errors.New("the history file is damaged")

// openChecked checks path's structure under a shared lock (so a file
// another agent is writing is never judged), then opens it for writing.
// Every step that reads the file runs under guard: a fault or panic there
// means the file is damaged, and is reported as errDamaged.
func openChecked(path string) (*Store, error) {
	if err := guard(func() error { return checkPath(path) }); err != nil {
		return nil, err
	}
	var s *Store
	err := guard(func() error {
		db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: time.Second, NoFreelistSync: true,
			FreelistType: bolt.FreelistMapType})
		if err != nil {
			return classify(path, err)
		}
		s = &Store{db: db, path: path, series: map[uint64]Series{}, names: map[string]uint32{},
			configs: map[*probe.Target]uint64{}, stored: map[uint64]bool{}, logged: map[uint64][]int64{},
			marks: map[uint64]marks{}, dirty: map[uint64]map[int64]bool{}}
		if err := s.load(); err != nil {
			_ = db.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	return s, err
}

// checkPath runs checkFile on path while holding bbolt's shared lock.
func checkPath(path string) error {
	if info, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && info.Size() == 0) {
		return nil // a new store
	}
	ro, err := bolt.Open(path, 0o640, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return classify(path, err)
	}
	defer ro.Close()
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	defer f.Close()
	return checkFile(f)
}

// classify tells a locked or unreadable file (the operator's to fix) from
// a damaged one (bbolt's own validation errors), which Open replaces.
func classify(path string, err error) error {
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("%s: %w", path, ErrLocked)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return fmt.Errorf("cannot open %s: %w", path, err)
	}
	return fmt.Errorf("%w: %w", errDamaged, err)
}

// guard runs f on a goroutine of its own that turns memory faults into
// panics (debug.SetPanicOnFault: bbolt reads the file through a memory
// map), and reports a panic as errDamaged.
func guard(f func() error) error {
	done := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%w: reading it panicked: %v", errDamaged, r)
			}
		}()
		done <- f()
	}()
	return <-done
}

// checkFile walks the page tree of a bbolt file from its newest valid meta
// page, reading the file itself (not through a memory map), and reports
// the first structural fault: a file shorter than its pages, a page id out
// of bounds, a page reached twice, a page of the wrong type, an element
// outside its page.
//
// Why not bbolt's own tx.Check: it runs in a goroutine of its own, and on a
// damaged file faults or panics there, where no recover can reach. And
// with NoFreelistSync, bolt.Open walks the same tree to rebuild the
// freelist and panics in another goroutine on the first inconsistency it
// reports: this check finds those inconsistencies first.
func checkFile(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	c := &checker{f: f, size: info.Size(), seen: map[uint64]bool{}}
	if c.size == 0 {
		return nil // bbolt initialises an empty file
	}
	m, err := c.newestMeta()
	if err != nil {
		return err
	}
	c.pageSize, c.hwm = int64(m.pageSize), m.hwm
	if c.hwm < 2 || c.hwm > uint64(c.size/c.pageSize) {
		return fmt.Errorf("%w: it holds %d bytes but its pages need %d (truncated?)", errDamaged,
			c.size, m.hwm*uint64(m.pageSize))
	}
	if m.freelist != noFreelist {
		if _, err := c.page(m.freelist, flagFreelist); err != nil {
			return err
		}
	}
	return c.tree(m.root, 0)
}

// bbolt's on-disk format (version 2), in the machine's byte order.
const (
	pageHeaderSize = 16
	elementSize    = 16
	bucketHdrSize  = 16 // root page id, sequence
	flagBranch     = 0x01
	flagLeaf       = 0x02
	flagMeta       = 0x04
	flagFreelist   = 0x10
	flagBucketLeaf = 0x01
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaSumOffset  = 56 // checksum covers the meta fields before it
	noFreelist     = ^uint64(0)
	maxBucketDepth = 64 // nested buckets; ours nest two deep
)

var order = binary.NativeEndian

type meta struct {
	pageSize       uint32
	root, freelist uint64
	hwm, txid      uint64
	valid          bool
	problem        string
}

type checker struct {
	f              *os.File
	size, pageSize int64
	hwm            uint64
	seen           map[uint64]bool
}

// readMeta decodes the meta page at off.
func (c *checker) readMeta(off int64) meta {
	buf := make([]byte, pageHeaderSize+metaSumOffset+8)
	if _, err := c.f.ReadAt(buf, off); err != nil {
		return meta{problem: "unreadable"}
	}
	b := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(b[:metaSumOffset])
	m := meta{pageSize: order.Uint32(b[8:]), root: order.Uint64(b[16:]), freelist: order.Uint64(b[32:]),
		hwm: order.Uint64(b[40:]), txid: order.Uint64(b[48:])}
	switch {
	case order.Uint16(buf[8:]) != flagMeta || order.Uint32(b) != boltMagic:
		m.problem = "not a meta page"
	case order.Uint32(b[4:]) != boltVersion:
		m.problem = "unknown version"
	case order.Uint64(b[metaSumOffset:]) != h.Sum64():
		m.problem = "checksum mismatch"
	case m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0:
		m.problem = fmt.Sprintf("page size %d", m.pageSize)
	default:
		m.valid = true
	}
	return m
}

// newestMeta finds the page size as bbolt does (meta 0, else meta 1 at
// the usual page sizes) and returns the valid meta page with the highest
// transaction id.
func (c *checker) newestMeta() (meta, error) {
	m0 := c.readMeta(0)
	ps := int64(m0.pageSize)
	if !m0.valid {
		ps = 0
		for i := range 15 {
			if m := c.readMeta(1024 << i); m.valid && int64(m.pageSize) == 1024<<i {
				ps = 1024 << i
				break
			}
		}
		if ps == 0 {
			return meta{}, fmt.Errorf("%w: no valid meta page (%s)", errDamaged, m0.problem)
		}
	}
	m1 := c.readMeta(ps)
	switch {
	case m0.valid && m1.valid && m1.pageSize == m0.pageSize:
		if m1.txid > m0.txid {
			return m1, nil
		}
		return m0, nil
	case m0.valid:
		return m0, nil
	case m1.valid:
		return m1, nil
	}
	return meta{}, fmt.Errorf("%w: no valid meta page", errDamaged)
}

// page reads page id (with its overflow pages), checking its bounds, its
// type and that no other reference reached it before.
func (c *checker) page(id uint64, wantFlags ...uint16) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("%w: page %d out of bounds [2, %d)", errDamaged, id, c.hwm)
	}
	head := make([]byte, pageHeaderSize)
	if _, err := c.f.ReadAt(head, int64(id)*c.pageSize); err != nil {
		return nil, fmt.Errorf("%w: page %d: %v", errDamaged, id, err)
	}
	flags, overflow := order.Uint16(head[8:]), uint64(order.Uint32(head[12:]))
	if got := order.Uint64(head); got != id {
		return nil, fmt.Errorf("%w: page %d claims to be page %d", errDamaged, id, got)
	}
	okType := false
	for _, f := range wantFlags {
		okType = okType || flags == f
	}
	if !okType {
		return nil, fmt.Errorf("%w: page %d has type %#x", errDamaged, id, flags)
	}
	if id+overflow >= c.hwm {
		return nil, fmt.Errorf("%w: page %d overflows past the last page", errDamaged, id)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i] {
			return nil, fmt.Errorf("%w: page %d is referenced twice", errDamaged, i)
		}
		c.seen[i] = true
	}
	buf := make([]byte, int64(overflow+1)*c.pageSize)
	if _, err := c.f.ReadAt(buf, int64(id)*c.pageSize); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: page %d: %v", errDamaged, id, err)
	}
	return buf, nil
}

// tree checks the bucket whose root page is id, and the buckets in it.
func (c *checker) tree(id uint64, depth int) error {
	if depth > maxBucketDepth {
		return fmt.Errorf("%w: buckets nested deeper than %d", errDamaged, maxBucketDepth)
	}
	_, err := c.node(id, depth, nil, nil)
	return err
}

// node checks page id of a bucket's tree and what is below it. Keys must
// ascend within [minKey, maxKey) as bbolt's own check demands (it panics
// at open on a violation); node returns the largest key below it.
func (c *checker) node(id uint64, depth int, minKey, maxKey []byte) ([]byte, error) {
	p, err := c.page(id, flagBranch, flagLeaf)
	if err != nil {
		return nil, err
	}
	count := int(order.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return nil, fmt.Errorf("%w: page %d: %d elements do not fit", errDamaged, id, count)
	}
	prev, last := minKey, []byte(nil)
	for i := range count {
		at := pageHeaderSize + i*elementSize
		if order.Uint16(p[8:]) == flagLeaf {
			key, err := c.leafElement(p, at, depth)
			if err != nil {
				return nil, fmt.Errorf("page %d element %d: %w", id, i, err)
			}
			if err := keyInOrder(i, key, prev, maxKey); err != nil {
				return nil, fmt.Errorf("page %d element %d: %w", id, i, err)
			}
			prev, last = key, key
			continue
		}
		key, child, err := branchElement(p, at)
		if err != nil {
			return nil, fmt.Errorf("page %d element %d: %w", id, i, err)
		}
		if err := keyInOrder(i, key, prev, maxKey); err != nil {
			return nil, fmt.Errorf("page %d element %d: %w", id, i, err)
		}
		childMax := maxKey
		if i+1 < count {
			if childMax, _, err = branchElement(p, at+elementSize); err != nil {
				return nil, fmt.Errorf("page %d element %d: %w", id, i+1, err)
			}
		}
		if prev, err = c.node(child, depth, key, childMax); err != nil {
			return nil, err
		}
		last = prev
	}
	return last, nil
}

// keyInOrder mirrors bbolt's verifyKeyOrder.
func keyInOrder(i int, key, prev, maxKey []byte) error {
	switch {
	case i == 0 && prev != nil && bytes.Compare(prev, key) > 0,
		i > 0 && bytes.Compare(prev, key) >= 0:
		return fmt.Errorf("%w: keys out of order", errDamaged)
	case maxKey != nil && bytes.Compare(key, maxKey) >= 0:
		return fmt.Errorf("%w: key beyond its parent's range", errDamaged)
	}
	return nil
}

// branchElement decodes the branch element at offset at of page p.
func branchElement(p []byte, at int) (key []byte, child uint64, err error) {
	e := p[at:]
	pos, ksize := int(order.Uint32(e)), int(order.Uint32(e[4:]))
	if end := at + pos + ksize; end > len(p) || end < at {
		return nil, 0, fmt.Errorf("%w: key outside the page", errDamaged)
	}
	return p[at+pos : at+pos+ksize], order.Uint64(e[8:]), nil
}

// leafElement decodes the leaf element at offset at of page p (a stored
// page, or an inline bucket's) and checks the bucket it may hold.
func (c *checker) leafElement(p []byte, at, depth int) ([]byte, error) {
	e := p[at:]
	eflags, pos := order.Uint32(e), int(order.Uint32(e[4:]))
	ksize, vsize := int(order.Uint32(e[8:])), int(order.Uint32(e[12:]))
	end := at + pos + ksize + vsize
	if end > len(p) || end < at {
		return nil, fmt.Errorf("%w: entry outside the page", errDamaged)
	}
	key, v := p[at+pos:at+pos+ksize], p[at+pos+ksize:end]
	if eflags&flagBucketLeaf == 0 {
		return key, nil
	}
	if len(v) < bucketHdrSize {
		return nil, fmt.Errorf("%w: bucket entry too short", errDamaged)
	}
	if root := order.Uint64(v); root != 0 {
		return key, c.tree(root, depth+1)
	}
	// An inline bucket: its one leaf page is in the value.
	inline := v[bucketHdrSize:]
	if len(inline) < pageHeaderSize || order.Uint16(inline[8:]) != flagLeaf {
		return nil, fmt.Errorf("%w: inline bucket is not a leaf", errDamaged)
	}
	count := int(order.Uint16(inline[10:]))
	if pageHeaderSize+count*elementSize > len(inline) {
		return nil, fmt.Errorf("%w: inline bucket: %d elements do not fit", errDamaged, count)
	}
	if depth+1 > maxBucketDepth {
		return nil, fmt.Errorf("%w: buckets nested deeper than %d", errDamaged, maxBucketDepth)
	}
	for i := range count {
		if _, err := c.leafElement(inline, pageHeaderSize+i*elementSize, depth+1); err != nil {
			return nil, fmt.Errorf("inline bucket element %d: %w", i, err)
		}
	}
	return key, nil
}

package pondsocket

// chanSet is a client's set of joined channels, holding its membership
// records (the instance keeps only a dense slice of the same records).
// Most connections are in one or a handful of channels: the first lives
// inline, a few more in a small slice, and past chanSetMax entries a map.
// This matters at a million members, where a map per connection would
// cost more than the membership itself.
type chanSet struct {
	one *member
	// oneIn is one.in, kept here so that finding the first channel reads
	// the client's own cache lines and the instance, not the member too
	oneIn *instance
	more  *chanSetMore
}

type chanSetMore struct {
	small []*member
	big   map[string]*member
}

const chanSetMax = 16

func (s *chanSet) get(name string) *member {
	if s.oneIn != nil && s.oneIn.name == name {
		return s.one
	}
	if s.more == nil {
		return nil
	}
	if s.more.big != nil {
		return s.more.big[name]
	}
	for _, m := range s.more.small {
		if m.in.name == name {
			return m
		}
	}
	return nil
}

// instance returns the instance of the membership in the channel called
// name, or nil. The first channel's is found without reading its member.
func (s *chanSet) instance(name string) *instance {
	if s.oneIn != nil && s.oneIn.name == name {
		return s.oneIn
	}
	if m := s.get(name); m != nil {
		return m.in
	}
	return nil
}

// has reports whether the set holds the membership of instance in: by
// identity, so no name is compared (and no name's bytes are read).
func (s *chanSet) has(in *instance) bool {
	if s.oneIn == in && in != nil {
		return true
	}
	if s.more == nil {
		return false
	}
	if s.more.big != nil {
		m := s.more.big[in.name]
		return m != nil && m.in == in
	}
	for _, m := range s.more.small {
		if m.in == in {
			return true
		}
	}
	return false
}

func (s *chanSet) len() int {
	n := 0
	if s.one != nil {
		n = 1
	}
	if s.more != nil {
		n += len(s.more.small) + len(s.more.big)
	}
	return n
}

func (s *chanSet) add(m *member) {
	if s.one == nil {
		s.one, s.oneIn = m, m.in
		return
	}
	if s.more == nil {
		s.more = &chanSetMore{}
	}
	mo := s.more
	switch {
	case mo.big != nil:
		mo.big[m.in.name] = m
	case len(mo.small) < chanSetMax:
		mo.small = append(mo.small, m)
	default:
		mo.big = make(map[string]*member, 2*chanSetMax)
		for _, x := range mo.small {
			mo.big[x.in.name] = x
		}
		mo.big[m.in.name] = m
		mo.small = nil
	}
}

// remove deletes m (compared by identity).
func (s *chanSet) remove(m *member) {
	if s.one == m {
		s.one, s.oneIn = nil, nil
		return
	}
	mo := s.more
	if mo == nil {
		return
	}
	if mo.big != nil {
		if mo.big[m.in.name] == m {
			delete(mo.big, m.in.name)
		}
	} else {
		for i, x := range mo.small {
			if x == m {
				last := len(mo.small) - 1
				mo.small[i] = mo.small[last]
				mo.small[last] = nil
				mo.small = mo.small[:last]
				break
			}
		}
	}
	if len(mo.small) == 0 && len(mo.big) == 0 {
		s.more = nil
	}
}

func (s *chanSet) all() []*member {
	out := make([]*member, 0, s.len())
	if s.one != nil {
		out = append(out, s.one)
	}
	if s.more != nil {
		out = append(out, s.more.small...)
		for _, m := range s.more.big {
			out = append(out, m)
		}
	}
	return out
}

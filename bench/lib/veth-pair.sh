# Sourced by bench scripts (not run on its own). veth_pair NS_C NS_S ADDR_C
# ADDR_S: two fresh network namespaces joined by a veth pair (veth-c in
# NS_C, veth-s in NS_S) with the two addresses of a /30, every link up.
# The caller deletes the namespaces at exit.
veth_pair() {
  local cns=$1 sns=$2 caddr=$3 saddr=$4
  ip netns add "$cns"
  ip netns add "$sns"
  ip link add veth-c netns "$cns" type veth peer name veth-s netns "$sns"
  ip -n "$cns" addr add "$caddr/30" dev veth-c
  ip -n "$sns" addr add "$saddr/30" dev veth-s
  for ns in "$cns" "$sns"; do ip -n "$ns" link set lo up; done
  ip -n "$cns" link set veth-c up
  ip -n "$sns" link set veth-s up
}

"""Resynthesis quality against real audio, behind `pwavenet evaluate`: objective metrics
and the Griffin-Lim reference (`metrics`), optional DNSMOS scores (`dnsmos`), and the
report files (`report`)."""

#!/usr/bin/env bash
# Screenshots of the terminal UI as a real terminal emulator draws it: xterm on a virtual X
# display (Xvfb) attached to a tmux session that runs `convlens` with half-block pictures; keys
# go in through tmux, `import` (ImageMagick) takes the picture. Writes docs/gallery/tui_*.png.
#
#   tui/scripts/screenshots.sh [path/to/convlens]
#
# Needs: Xvfb, xterm, tmux, ImageMagick, a monospace font (apt-get install xvfb xterm tmux
# imagemagick fonts-dejavu-core).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-target/debug/convlens}")
out=docs/gallery
mkdir -p "$out"
work=$(mktemp -d)
server="convlens-shots-$$"
display=":$((90 + $$ % 100))"
cleanup() {
  tmux -L "$server" kill-server 2>/dev/null || true
  # The daemon the TUI started on the private socket: stopped by its pid, which `status` names.
  pid=$("$bin" --socket "$work/daemon.sock" status 2>/dev/null | awk '/^daemon pid/ {print $3}')
  [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null || true
  [[ -n "${xvfb:-}" ]] && kill "$xvfb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

Xvfb "$display" -screen 0 1800x1200x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 1
session() { # session COLS ROWS: convlens in a tmux session of that size, an xterm attached to it
  tmux -L "$server" new-session -d -s t -x "$1" -y "$2" -e TERM=xterm-256color \
    "$bin --socket $work/daemon.sock --graphics halfblocks"
  tmux -L "$server" set-option -t t status off
  DISPLAY=$display xterm -geometry "${1}x${2}+0+0" -fa 'DejaVu Sans Mono' -fs 9 \
    -bg '#101010' -fg '#d0d0d0' -xrm 'XTerm*termName: xterm-256color' \
    -e tmux -L "$server" attach -t t &
  xterm=$!
  sleep 2
}

screen() { tmux -L "$server" capture-pane -p -t t; }
wait_for() { # wait_for TEXT: until the screen shows TEXT (90 s at most)
  for _ in $(seq 1 900); do screen | grep -qF -- "$1" && return 0; sleep 0.1; done
  echo "never showed: $1" >&2; screen >&2; return 1
}
wait_gone() { # wait_gone TEXT: until the screen no longer shows TEXT (90 s at most)
  for _ in $(seq 1 900); do screen | grep -qF -- "$1" || return 0; sleep 0.1; done
  echo "never went: $1" >&2; screen >&2; return 1
}
wait_idle() { # wait_idle SECONDS: until the status line names nothing being computed
  for _ in $(seq 1 $(($1 * 10))); do screen | tail -n 1 | grep -qE '^ {40}' && return 0; sleep 0.1; done
  echo "still busy after $1 s" >&2; screen >&2; return 1
}
keys() { for k in "$@"; do tmux -L "$server" send-keys -t t "$k"; sleep 0.05; done; }
shot() { # shot NAME: the xterm window as docs/gallery/tui_NAME.png
  sleep 1.5
  local win
  win=$(DISPLAY=$display xwininfo -root -children | awk '/xterm/ {print $1; exit}')
  DISPLAY=$display import -window "${win:-root}" "$out/tui_$1.png"
  echo "wrote $out/tui_$1.png"
}

session 160 50
wait_for "% "
keys Down Down Down Down Right Down Down Down Down
wait_for "_blocks.0._project_conv"
wait_for "unit 0 of 0–15 · max"
shot browse
keys Tab Tab Right Right Right # unit index 3: the fourth tile of the first row
wait_for "unit 3 of 0–15 · max"
keys i
wait_for "Inspector unit"
wait_for "of 5 images" # the folder pass: the folder statistics and the top images
wait_for "press a to compute"
keys a # the unit's Lucid maximization: 512 steps, a few minutes on a small CPU
wait_gone "press a to compute"
wait_idle 900
if screen | grep -qF "maximization:"; then # still loading, or failed
  echo "no maximization" >&2; screen >&2; exit 1
fi
sleep 3
shot units_inspector
keys o
wait_for "Overlay gradcam at _blocks.0._project_conv · class"
shot overlay_gradcam
keys M M M M
wait_for "Overlay guided-backprop · class"
shot overlay_guided_backprop
keys ']' m
wait_for "chelsea.jpg"
wait_for "Overlay deconvnet · class"
shot overlay_deconvnet_chelsea
keys '?'
wait_for "any key closes"
shot help
keys Escape Tab g f
wait_for "filter 0 of 0–31"
shot filters
keys t
wait_for "Map t-SNE of 5 images"
wait_for "Enter: make it current"
shot map
keys q
wait "$xterm" 2>/dev/null || true # the session ended with the UI, and its xterm with it

# The same unit grid on the smallest terminal the UI is laid out for (the daemon is kept).
session 80 24
wait_for "% "
keys Down Down Down Down Right Down Down Down Down
wait_for "_blocks.0._project_conv"
wait_for "unit 0 of 0–15 · max"
shot units_80x24
keys q
wait "$xterm" 2>/dev/null || true

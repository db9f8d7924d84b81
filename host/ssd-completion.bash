# Tab completion for ssdhost, ssd-emulator and ssd-board in bash.
# Each program completes its own command line through System.CommandLine's [suggest] directive:
#   PROGRAM "[suggest:CURSOR]" "COMMAND LINE"   prints one candidate a line.
# Install: source this file from ~/.bashrc (README: "Tab completion").
_ssd_complete() {
  local IFS=$'\n'
  local candidates
  candidates=$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) || return 0
  COMPREPLY=($(compgen -W "${candidates}" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _ssd_complete ssdhost ssd-emulator ssd-board

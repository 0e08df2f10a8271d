# bash completion for postern, the Postern launcher (installed as
# share/bash-completion/completions/postern). Target names come from the list the last
# `postern ls`, `psql`, `env` or `connect` saved: `postern ls --cached --names` never touches
# the network, so completing is instant and works offline.

_postern_targets()
{
    postern ls --cached --names 2>/dev/null
}

_postern()
{
    local cur prev cmd i
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"

    # The command is the first word after postern that is not an option.
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -*) ;;
            *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done

    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "login status logout ls psql env connect --help --version" -- "$cur"))
        return 0
    fi

    case "$cmd" in
        login)
            case "$prev" in
                --invite|--totp|--device-name) return 0 ;;
            esac
            COMPREPLY=($(compgen -W "--invite --totp --device-name --help" -- "$cur"))
            ;;
        status|logout)
            COMPREPLY=($(compgen -W "--help" -- "$cur"))
            ;;
        ls)
            COMPREPLY=($(compgen -W "--json --names --cached --help" -- "$cur"))
            ;;
        psql|env)
            # Only the target is ours; after it, psql's own arguments (files, mostly).
            local n=0
            for ((i = i + 1; i < COMP_CWORD; i++)); do
                [[ "${COMP_WORDS[i]}" != -* ]] && n=$((n + 1))
            done
            if ((n == 0)); then
                if [[ "$cur" == -* ]]; then
                    COMPREPLY=($(compgen -W "--help" -- "$cur"))
                else
                    COMPREPLY=($(compgen -W "$(_postern_targets)" -- "$cur"))
                fi
            elif [[ "$cmd" == psql ]]; then
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            ;;
        connect)
            case "$prev" in
                --port) return 0 ;;
                --bind) COMPREPLY=($(compgen -W "127.0.0.1 ::1" -- "$cur")); return 0 ;;
            esac
            if [[ "$cur" == -* ]]; then
                COMPREPLY=($(compgen -W "--port --bind --help" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_postern_targets)" -- "$cur"))
            fi
            ;;
    esac
    return 0
}

complete -F _postern postern

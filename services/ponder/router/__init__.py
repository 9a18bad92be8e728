"""The router: validate -> plan -> dispatch -> aggregate -> answer."""

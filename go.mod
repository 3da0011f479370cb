module github.com/debseal/debseal

go 1.26.0

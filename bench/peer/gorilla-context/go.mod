module github.com/gorilla/context

go 1.19
